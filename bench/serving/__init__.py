"""Serving benchmark: N simulated labelers over real HTTP against the site on gunicorn + PostgreSQL.

    .venv/bin/python bench/serve.py --labelers 50 --seconds 20      (or: python -m bench.serving ...)

What it does: creates its own database (default rlhf_bench; dropped and recreated every run) and migrates
it. It seeds one big pairwise campaign whose money budget is far above what the run can spend, so every
claim still goes through the budget lock and check. The first `--history` comparisons already carry their
paid judgements, as a campaign that has run for a while does. It makes one simulated labeler account per
client, starts gunicorn on 127.0.0.1 and a free port, and lets the labelers loop next item -> submit: a
warm-up, then a fixed measured time. It prints judgements per second, p50 / p99 latency of both calls and
where the CPU went. It then checks in the database that every acknowledged judgement is stored exactly
once and charged exactly once, that nothing unacknowledged was stored, and that every comparison counts
the judgements it holds.

The server runs as the README deploys it, gunicorn sync workers, which answer one request per connection; but
here PostgreSQL and the clients share the same cores, so it runs one worker a core plus one by default (3 on 2
cores). Every extra process costs CPU in switching: in interleaved runs on 2 cores, 3 workers took 7.1 ms of CPU
a judgement against 8.1 ms for 4 and served 10 % more; 8 workers were up to 20 % slower than 4. Where
PostgreSQL has its own machine (the README's deployment) a request waits on it, and 2 or more a core pay.
A sync worker takes the next waiting request from the shared listen queue, so requests are served about in
arrival order, and p99 stays near 1.4 x p50; gthread workers (`--worker-class gthread --workers 2 --threads 4`)
save the connection per request but were no faster on 2 cores, with p99 2 to 4 x p50, since each keeps its own
connections.

The clients are a few processes, each a selector loop over one non-blocking socket per labeler (reopened when
the server closes it, as sync workers do) and a minimal HTTP/1.1 client, so that they cost as little CPU as
possible. They still share the machine's cores with gunicorn and PostgreSQL, and the printed CPU split says how
much they took. Labelers answer "first" or "second" at random: the gold model's cost is not what is measured
here.

`--profile` runs every request after the warm-up under cProfile (CPU time) in the gunicorn workers, prints
where server time goes, and EXPLAINs the statements of one claim as PostgreSQL runs them inside
`annotator_claim`. `--critical-section N` times N claims made one after another in-process: on a budgeted
campaign claims are serial, so that bounds throughput. `--in-process N` runs N next -> submit cycles through
the WSGI application in one thread (no HTTP, no concurrency) and splits their CPU into Python and PostgreSQL.

The parts: config (the options), database (create, migrate, claim the name), seeding (the campaign and its
paid history), server (gunicorn), client (the labelers), measurement (CPU, percentiles), check (the database
check), in_process and profiling (the extra modes), report (the printed summary) and run (the whole run).
"""
