"""MQTT publishing: settings, the persistent outbox, the publisher thread and ``edgemon watch``.

Import the submodules directly:

* :mod:`edgemon.publish.settings`: ``MqttSettings``, ``parse_mqtt_table``;
* :mod:`edgemon.publish.client`: ``MqttPublisher``;
* :mod:`edgemon.publish.console`: ``ConsoleSink`` for runs without a broker;
* :mod:`edgemon.publish.connect`: ``broker_reachable`` and the connection logic;
* :mod:`edgemon.publish.watch`: ``run_watch``;
* :mod:`edgemon.publish.payloads`: payload rendering and the JSON Schemas;
* :mod:`edgemon.publish.discovery`: Home Assistant MQTT discovery.
"""
