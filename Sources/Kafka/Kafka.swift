// Kafka producer and consumer over librdkafka, bridged into the event loop through queue event fds.
