"""The behaviour every channel transport must show (see toolkit/channels/base.py).

A transport's test module star-imports this suite and provides fixtures:

* ``features``: a :class:`Features` saying what the transport offers beyond the
  core promises (delayed retry, a dead-letter store, hand-written entries,
  leases) and how long a closed consumer's messages take to go to another;
  tests of what it lacks are skipped;
* ``transport``: an open Transport with empty channels, built with
  ``max_message_bytes=MESSAGE_LIMIT``, closed afterwards;
* ``add_raw`` (when ``features.raw_entries``): ``async (channel, fields) -> None``
  appending raw wire fields as another language would.

A new transport is done when its module (about twenty lines) passes.

==================  ===========================================================
``delivery``        order, groups, shared work, acknowledgement, redelivery
``dead_letters``    reject with reason and details; list, show, replay, purge
``retry``           retry later: after the delay, not before; delivery counts
``wire``            the wire round trip, the size limit, hand-written entries
``consumer``        the consumer over the transport: retries, dead letters, poison
``leases``          renewing the lease on messages in hand (``RenewsLeases``)
``subscriptions``   per channel, only the keys and publishers subscribed there
``deduplication``   handled message ids skipped within a window (``Deduplicates``)
``scheduling``      held until due, listed, cancelled by id (``Schedules``)
``priorities``      a backlog hands out higher priorities first (``Prioritizes``)
==================  ===========================================================
"""

from __future__ import annotations

from tests.channels.suite.consumer import *  # noqa: F403
from tests.channels.suite.dead_letters import *  # noqa: F403
from tests.channels.suite.deduplication import *  # noqa: F403
from tests.channels.suite.delivery import *  # noqa: F403
from tests.channels.suite.helpers import *  # noqa: F403
from tests.channels.suite.leases import *  # noqa: F403
from tests.channels.suite.priorities import *  # noqa: F403
from tests.channels.suite.retry import *  # noqa: F403
from tests.channels.suite.scheduling import *  # noqa: F403
from tests.channels.suite.subscriptions import *  # noqa: F403
from tests.channels.suite.wire import *  # noqa: F403
