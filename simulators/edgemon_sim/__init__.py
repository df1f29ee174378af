"""``edgemon-sim``: streams recordings over UDP as a live sensor would.

Installed as ``edgemon_sim`` so that it cannot collide with another
package's ``simulators``. The packet framing is :mod:`edgemon.sources.wire`,
the same module the daemon's ``udp`` source decodes with.
"""

from edgemon_sim.streamer import Streamer, StreamStats

__all__ = ["StreamStats", "Streamer"]
