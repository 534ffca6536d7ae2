"""Wire models shared by the daemon, the CLI and the agent. No I/O here.

`api` holds the REST and /ws shapes; `agent` the /ws/agent protocol and signals.
"""

from signalosd.models.agent import *  # noqa: F403
from signalosd.models.api import *  # noqa: F403
