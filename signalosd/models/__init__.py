"""Wire models shared by the daemon, the CLI and the agent. No I/O here.

`api` holds the REST and /ws shapes; `agent` the /ws/agent protocol and signals; `words` the
event types, close codes and actor kinds; `type_filter` the event type filters.
"""

from signalosd.models.agent import *  # noqa: F403
from signalosd.models.api import *  # noqa: F403
from signalosd.models.words import *  # noqa: F403
