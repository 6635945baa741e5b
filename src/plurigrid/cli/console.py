"""The command line's consoles: results on stdout, messages on stderr.

Emoji codes are off: a did:key holds ":key:", which rich would print as a key emoji.
"""

from __future__ import annotations

from rich.console import Console

out = Console(emoji=False)
err = Console(stderr=True, emoji=False)
