"""``smppgw bench``: the end-to-end benchmark. Starts the simulator, the gateway and the load generator as separate
processes, measures the gateway beside a direct load generator → simulator baseline in the same run, and reports
throughput, receipts, latency percentiles, CPU-µs per segment of every process and the gateway's peak RSS.

Modules: ``procfs`` (CPU and memory of a process from /proc), ``process`` (spawning, readiness, stopping),
``report`` (result values, medians, text and JSON), ``runner`` (the orchestration), ``plot`` (optional PNG),
``cli`` (the command line).
"""
