"""The durable command queue to the desktop agent, end to end, a module per job:

- `enqueue`: a command enters the queue (deadline, priority, halt generation);
- `cancel`: entries and resumes leave it unexecuted (the emergency stop's fence, a restore);
- `deadlines`: how long a command lives and when it expires, the one place that decides;
- `settle`: a command that never ran, finished (cancelled or expired), and its pending trade;
- `delivery`: sending the queue to a connected agent, redelivery after the ack timeout;
- `results`: the agent's acks and results applied to their commands;
- `waiters`: requests long-polling a command's outcome;
- `actors`: the daemon's own actors (delivery, expiry) in the events it appends.
"""
