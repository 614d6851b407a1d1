"""Simulated labelers over HTTP: `run` starts them, `http_labeler` is one labeler's API client, `counters`
tallies what they did, `local_site` serves the site from this process when no server runs (the demo)."""
