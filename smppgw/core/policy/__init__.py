"""Pure sending-policy logic (DESIGN §5): production calendar, recipient-local hours, collection caps, stop list."""
