"""Drive churn-serve through a client generated from its /openapi.json (openapi-python-client):
score, look up, page the worklist, post outcomes, read the evaluation — typed models both ways,
no hand-written JSON. Run by tests/it/client.rs: argv = [generated package dir, base URL, token].
Prints one line per step; exits non-zero (an AssertionError) on the first wrong answer."""

import datetime
import sys

sys.path.insert(0, sys.argv[1])
BASE, TOKEN = sys.argv[2], sys.argv[3]

from churn_client import AuthenticatedClient  # noqa: E402
from churn_client.api.default import (  # noqa: E402
    get_customer,
    get_evaluation,
    get_worklist,
    record_outcomes,
    score_default,
)
from churn_client.models import (  # noqa: E402
    Customer,
    CustomerRecord,
    Evaluation,
    OutcomesRequest,
    OutcomesRequestOutcomesItem,
    OutcomesResult,
    ScoreRequest,
    ScoreResponse,
    WorklistPage,
)
from churn_client.models.outcomes_request_outcomes_item_event import (  # noqa: E402
    check_outcomes_request_outcomes_item_event,
)
from churn_client.types import UNSET  # noqa: E402

client = AuthenticatedClient(base_url=BASE, token=TOKEN, raise_on_unexpected_status=True)

# the first two customers of the bundled Telco table, as typed models
customers = [
    Customer(
        customer_id="7590-VHVEG", gender="Female", senior_citizen=0, partner="Yes",
        dependents="No", tenure=1, phone_service="No", multiple_lines="No phone service",
        internet_service="DSL", online_security="No", online_backup="Yes",
        device_protection="No", tech_support="No", streaming_tv="No", streaming_movies="No",
        contract="Month-to-month", paperless_billing="Yes", payment_method="Electronic check",
        monthly_charges=29.85, total_charges="29.85",
    ),
    Customer(
        customer_id="5575-GNVDE", gender="Male", senior_citizen=0, partner="No",
        dependents="No", tenure=34, phone_service="Yes", multiple_lines="No",
        internet_service="DSL", online_security="Yes", online_backup="No",
        device_protection="Yes", tech_support="No", streaming_tv="No", streaming_movies="No",
        contract="One year", paperless_billing="No", payment_method="Mailed check",
        monthly_charges=56.95, total_charges=1889.5,
    ),
]

scored = score_default.sync(client=client, body=ScoreRequest(customers=customers))
assert isinstance(scored, ScoreResponse), scored
assert len(scored.results) == 2
first = scored.results[0]
assert first.customer_id == "7590-VHVEG", first.customer_id
assert isinstance(first.churn_probability, float) and 0.0 < first.churn_probability < 1.0
low, high = first.probability_interval
assert low <= first.churn_probability <= high
assert first.risk_band in ("low", "medium", "high"), first.risk_band
assert isinstance(first.contact, bool)
assert first.recommendations, "the playbook recommends something"
rec = first.recommendations[0]
assert isinstance(rec.action, str) and isinstance(rec.expected_value, float)
assert round(rec.expected_value, 2) == rec.expected_value, "money in cents"
print(f"score: {first.customer_id} p={first.churn_probability:.3f} {first.risk_band} "
      f"{rec.action} ev={rec.expected_value}")

# the store writes asynchronously: look the customer up until it is there
import time  # noqa: E402

record = None
for _ in range(100):
    record = get_customer.sync("7590-VHVEG", client=client)
    if isinstance(record, CustomerRecord):
        break
    time.sleep(0.05)
assert isinstance(record, CustomerRecord), record
assert record.prediction_id == first.prediction_id
assert record.churn_probability == first.churn_probability
assert record.top_action == rec.action
print(f"lookup: {record.customer_id} {record.prediction_id} top {record.top_action}")

# the worklist, one row per page, following next_cursor to the end
seen = []
cursor = UNSET
for _ in range(10):
    page = get_worklist.sync(client=client, limit=1, cursor=cursor)
    assert isinstance(page, WorklistPage), page
    seen.extend(row.prediction_id for row in page.customers)
    if not page.next_cursor:
        break
    cursor = page.next_cursor
assert len(seen) == len(set(seen)) >= 2, seen
print(f"worklist: {len(seen)} rows in pages of one")

at = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)).strftime(
    "%Y-%m-%dT%H:%M:%SZ"
)
body = OutcomesRequest(
    outcomes=[
        OutcomesRequestOutcomesItem(
            customer_id="7590-VHVEG",
            event=check_outcomes_request_outcomes_item_event("retained"),
            at=at,
            external_id="client-test-1",
        )
    ]
)
stored = record_outcomes.sync(client=client, body=body)
assert isinstance(stored, OutcomesResult), stored
assert (stored.stored, stored.duplicates) == (1, 0), stored
again = record_outcomes.sync(client=client, body=body)
assert isinstance(again, OutcomesResult) and (again.stored, again.duplicates) == (0, 1), again
print(f"outcomes: stored {stored.stored}, then {again.duplicates} duplicate")

ev = get_evaluation.sync(client=client, horizon_days=90)
assert isinstance(ev, Evaluation), ev
assert ev.model == "telco" and ev.horizon_days == 90, (ev.model, ev.horizon_days)
assert isinstance(ev.predictions, int) and ev.predictions >= 2, ev.predictions
print(f"evaluation: {ev.predictions} predictions of {ev.customers} customers, horizon {ev.horizon_days}")
print("client ok")
