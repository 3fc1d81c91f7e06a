"""The JSON API under /api/v1: one handler module per area, the msgspec schemas they read
and answer (``*schemas``), and what several areas share: answers (rows → API objects),
account (the caller's cached reads), posting (post writes), email_tokens (spending emailed
tokens)."""
