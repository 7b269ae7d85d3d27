"""HubSpot's official Python SDK (hubspot-api-client) works against the sandbox unchanged."""

from __future__ import annotations

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.objects.tasks import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectInputForCreate,
)


@pytest.fixture
def client(server) -> HubSpot:
    return HubSpot(access_token=server.token, host=server.base_url)


def test_sdk_lists_searches_updates_and_creates_tasks(client, server, state) -> None:
    page = client.crm.contacts.basic_api.get_page(limit=10, properties=["email", "lifecyclestage"])
    assert len(page.results) == 10
    assert page.results[0].id == "1001" and "email" in page.results[0].properties
    assert page.paging.next.after == "1011"

    request = PublicObjectSearchRequest(
        filter_groups=[
            FilterGroup(
                filters=[Filter(property_name="lifecyclestage", operator="EQ", value="customer")]
            )
        ],
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        properties=["lifecyclestage"],
        limit=5,
    )
    found = client.crm.contacts.search_api.do_search(public_object_search_request=request)
    customers = [
        r for r in state.iter_live("contacts") if r.props.get("lifecyclestage") == "customer"
    ]
    assert found.total == len(customers)
    assert [r.id for r in found.results] == [str(r.id) for r in customers[:5]]

    batch = BatchInputSimplePublicObjectBatchInput(
        inputs=[
            SimplePublicObjectBatchInput(id="1002", properties={"lifecyclestage": "opportunity"})
        ]
    )
    updated = client.crm.contacts.batch_api.update(
        batch_input_simple_public_object_batch_input=batch
    )
    assert updated.results[0].properties["lifecyclestage"] == "opportunity"
    assert state.get("contacts", 1002).props["lifecyclestage"] == "opportunity"

    task = SimplePublicObjectInputForCreate(
        properties={
            "hs_timestamp": "2026-05-02T09:00:00.000Z",
            "hs_task_subject": "Call back: asked for a quote",
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": "HIGH",
            "hs_task_type": "CALL",
        },
        associations=[
            PublicAssociationsForObject(
                to=PublicObjectId(id="1002"),
                types=[
                    AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=204)
                ],
            )
        ],
    )
    created = client.crm.objects.tasks.basic_api.create(simple_public_object_input_for_create=task)
    assert created.properties["hs_task_subject"] == "Call back: asked for a quote"
    links = client.crm.associations.v4.basic_api.get_page(
        object_type="contacts", object_id="1002", to_object_type="tasks"
    )
    assert created.id in {str(r.to_object_id) for r in links.results}
    stats = server.stats()
    assert stats["writes"] == 2 and stats["429"] == 0
