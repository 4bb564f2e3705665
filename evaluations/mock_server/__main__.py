"""``python -m evaluations.mock_server``: the mock model server without Django."""

from evaluations.mock_server.runner import main

main()
