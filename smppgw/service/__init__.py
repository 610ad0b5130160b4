"""The gateway pipeline: upstream sessions → accept → persist → route → connectors → receipts back."""
