"""The node's conversational agent: explains runs, answers what-ifs and takes preferences, in five languages, offline.

`Chat(Context(...)).ask(text)` answers one message; see docs/chat.md.
"""

from plurigrid.chat.session import Answer, Chat
from plurigrid.chat.tools import Context

__all__ = ["Answer", "Chat", "Context"]
