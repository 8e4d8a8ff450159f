"""RabbitMQ channels (AMQP 0-9-1 through aiormq, the protocol layer of aio-pika).

A channel is a fanout exchange; each consuming group (service) is a durable
quorum queue bound to it, so every group sees every message and the
consumers of one group share its queue. Names in
:mod:`toolkit.channels.rabbitmq.names`; the design, guarantees and figures in
``docs/rabbitmq.md``.

One job per module:

==================  ===========================================================
``transport``       :class:`RabbitTransport`: sending (coalesced, confirmed), topology
``subscription``    :class:`RabbitSubscription`: receive, ack, retry later, reject
``dead_letters``    the dead-letter store: list, replay, purge
``schedule``        scheduled messages: the cascade of TTL wait queues
``link``            the connection: opened on first use, reopened after an outage
``wire``            envelopes as AMQP messages (headers + body) and back
``names``           exchange and queue names of a channel, the retry delay ladder
``errors``          what an error means: transient or real; :class:`RabbitUnavailable`
``pipe``            ``open_transport(url, settings)`` for ``amqp://`` and ``amqps://``
==================  ===========================================================

Names are imported on first use: ``toolkit --help`` does not load the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit import _lazy

if TYPE_CHECKING:
    from toolkit.channels.rabbitmq.errors import RabbitUnavailable
    from toolkit.channels.rabbitmq.names import ChannelNames
    from toolkit.channels.rabbitmq.subscription import RabbitSubscription
    from toolkit.channels.rabbitmq.transport import RabbitTransport

#: public name -> the module that defines it
_LAZY: dict[str, str] = {
    "ChannelNames": "toolkit.channels.rabbitmq.names",
    "RabbitSubscription": "toolkit.channels.rabbitmq.subscription",
    "RabbitTransport": "toolkit.channels.rabbitmq.transport",
    "RabbitUnavailable": "toolkit.channels.rabbitmq.errors",
}

__getattr__, __dir__ = _lazy(__name__, _LAZY)

__all__ = ["ChannelNames", "RabbitSubscription", "RabbitTransport", "RabbitUnavailable"]
