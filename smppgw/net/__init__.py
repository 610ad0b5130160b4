"""The only asyncio code: the connection adapter, the SMPP server (listener) and client links."""
