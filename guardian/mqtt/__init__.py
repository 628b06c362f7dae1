"""MQTT input: the source adapter (the only module here that imports aiomqtt) and its loop."""
