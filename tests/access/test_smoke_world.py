from access.selectors import grant_list_active


def test_world_builds(world) -> None:
    assert world.release.status == "ready"
    assert grant_list_active(user=world.users["granted"]).count() == 1
