"""The board and the ticket page: where on-call staff work the queue."""
