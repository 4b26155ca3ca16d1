"""Reading the server's `/playQueues` answer: which leaf a player is told to play."""

from pathlib import Path

import pytest

from custom_components.plexus.plex.control import parse_play_queue
from custom_components.plexus.plex.errors import PlexResponseError

FIXTURES = Path(__file__).parent / "fixtures" / "ha-core"


def test_recorded_play_queue() -> None:
    queue = parse_play_queue((FIXTURES / "playqueue_1234.xml").read_bytes())
    assert (queue.id, queue.selected_key, queue.keys) == ("1234", "100", ("100",))


def test_older_server_names_the_selected_queue_item_only() -> None:
    """Without playQueueSelectedMetadataItemID the selected queue item gives the leaf."""
    body = (
        '<MediaContainer playQueueID="7" playQueueSelectedItemID="502">'
        '<Video ratingKey="11" playQueueItemID="501"/>'
        '<Video ratingKey="12" playQueueItemID="502"/>'
        '<Video ratingKey="13" playQueueItemID="503"/></MediaContainer>'
    )
    queue = parse_play_queue(body)
    assert queue.selected_key == "12"
    assert queue.keys == ("11", "12", "13")


def test_no_selection_starts_at_the_first_leaf() -> None:
    body = (
        '<MediaContainer playQueueID="7"><Track ratingKey="21"/><Track ratingKey="22"/>'
        "</MediaContainer>"
    )
    assert parse_play_queue(body).selected_key == "21"


@pytest.mark.parametrize(
    "body",
    [
        '<MediaContainer size="0"/>',  # a queue of nothing (an empty season)
        '<MediaContainer playQueueID="7" size="0"/>',
        '<MediaContainer><Video ratingKey="1"/></MediaContainer>',  # no queue id
    ],
)
def test_answer_without_a_queue_or_leaf_is_an_error(body: str) -> None:
    with pytest.raises(PlexResponseError, match="nothing to play"):
        parse_play_queue(body)
