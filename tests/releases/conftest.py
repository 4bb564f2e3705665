import pytest

from tests.access.world import AccessWorld, access_world


@pytest.fixture
def world(db: None, tmp_path, settings) -> AccessWorld:
    settings.MEDIA_ROOT = tmp_path
    settings.SENDFILE_ROOT = str(tmp_path)
    return access_world()
