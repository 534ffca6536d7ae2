"""The durable command queue to the desktop agent, end to end: enqueue, delivery, results,
waiters and expiry."""
