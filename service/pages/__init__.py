"""Server-rendered pages opened from links in emails: verify an address, reset a password,
open a post or job in the app, unsubscribe."""
