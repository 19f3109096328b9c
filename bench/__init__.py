"""The benchmark: throughput at Airtable's ceiling, memory, cold start, and a serial baseline.

    python -m bench [--messages 10000] [--baseline-messages 2000] [--quick]

Every component runs in its own process (moto's SQS server, the Airtable emulator, the
poller, the baseline), so each figure belongs to the process it describes. See README.md.
"""
