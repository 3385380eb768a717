"""The sans-IO engine: the Fetch standard's CORS algorithms, browser profiles, the preflight
cache and the state machine that pairs preflights with the requests they authorise.

Nothing here opens a file, reads a clock, prints or imports an I/O library: exchanges go
in, verdict events come out, and time is only ever the capture's own timestamps.
"""
