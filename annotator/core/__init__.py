"""The rules every layer shares: pricing, sides, errors, leases and the budget check, money (no queries here)."""
