"""Tests of the pure sending-policy logic."""
