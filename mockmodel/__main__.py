"""``python -m mockmodel``: the mock model server without Django."""

from mockmodel.runner import main

main()
