"""Pure gateway domain: time and randomness are passed in, never read here."""
