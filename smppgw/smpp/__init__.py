"""Sans-IO SMPP 3.4: wire constants, PDUs, codec, framing, text, receipts, window and session.

Nothing in this package does I/O, reads a clock or imports asyncio: bytes go in, events and bytes come out, and
time is always an argument.
"""
