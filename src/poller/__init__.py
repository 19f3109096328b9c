"""Scheduled bridge that drains an SQS queue into an Airtable table.

Layout: `drain` is the pure core (receive -> map -> write -> delete confirmed), written
against the ports in `ports`. `sqs` and `airtable` are the adapters at the edge, and
`handler` only wires them together from a validated `config.Config`.
"""
