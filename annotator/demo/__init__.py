"""The demo's data: accounts, the sentiment campaign and comparisons cut from Shakespeare (`seed`)."""
