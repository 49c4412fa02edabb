"""Customer files (三(一)3) and the policies the agency placed; the demo customers.

The sales process files the customer once identity is verified and records the policy when it
is issued; claims and complaints look a policy up (its holder, whether it is life business, its
seller for 回避). Identity numbers are masked in the audit trail (processes.md §1.2).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.case_files.operators import Call, operator
from engine.errors import InvalidInputError, NotFoundError
from engine.storage import customers as customer_rows
from engine.storage import users
from engine.storage.models import Customer, Policy, User
from engine.timekeeping import clock

LIFE_CATEGORIES = frozenset({"普通寿险", "分红", "万能", "投连"})
"""Life insurance in the sense of 保险法 第26条 (5-year limitation); the rest is 2 years."""

_CUSTOMER_FIELDS = ("name", "id_type", "id_no", "mobile", "occupation", "address")


def mask_id(id_no: str) -> str:
    """``110101********1234``: the first six and the last four characters."""
    return id_no if len(id_no) <= 10 else id_no[:6] + "*" * (len(id_no) - 10) + id_no[-4:]


def _required(values: Mapping[str, Any], keys: tuple[str, ...], what: str) -> None:
    if not isinstance(values, Mapping):
        raise InvalidInputError(f"{what} 须为对象 / {what} must be an object")
    missing = [k for k in keys if not values.get(k)]
    if missing:
        raise InvalidInputError(f"{what} 缺少 {', '.join(missing)} / {what} lacks {missing}")


@operator("customer_file", required=("customer",))
def customer_file(call: Call, customer: Mapping[str, Any]) -> dict[str, Any]:
    _required(customer, ("name", "id_type", "id_no"), "customer")
    values = customer_rows.CustomerValues(
        **{
            k: (str(customer[k]) if customer.get(k) not in (None, "") else None)
            for k in _CUSTOMER_FIELDS
        }
    )
    tx, now = call.tx, clock.now()
    found = customer_rows.customer_by_identity(tx, values.id_type, values.id_no)
    if found is not None:
        customer_id, customer_no = found
        customer_rows.update_customer(tx, customer_id, values, now)
        created = False
    else:
        new_id = customer_rows.insert_customer(
            tx, f"new-{values.id_type}-{values.id_no}"[:16], values, now
        )
        customer_no, created = f"C{new_id:06d}", True
        customer_rows.set_customer_no(tx, new_id, customer_no)
    call.audit(
        "customer_filed",
        {"customer_no": customer_no, "created": created, "id_no": mask_id(str(values.id_no))},
    )
    return {"customer_no": customer_no, "created": created}


@operator("policy_record", required=("policy",))
def policy_record(call: Call, policy: Mapping[str, Any]) -> dict[str, Any]:
    _required(policy, ("policy_no", "customer_no", "insurer", "product_code", "category"), "policy")
    tx = call.tx
    customer_id = customer_rows.customer_id(tx, str(policy["customer_no"]))
    if customer_id is None:
        raise NotFoundError(
            f"客户 {policy['customer_no']} 不存在 / no customer {policy['customer_no']}"
        )
    if customer_rows.policy_exists(tx, str(policy["policy_no"])):
        raise InvalidInputError(
            f"保单号 {policy['policy_no']} 已存在 / policy {policy['policy_no']} exists"
        )
    seller = policy.get("seller")
    seller_id = users.user_id(tx, seller) if seller else None
    category = str(policy["category"])
    life = bool(policy["life"]) if "life" in policy else category in LIFE_CATEGORIES
    term = policy.get("term_years")
    customer_rows.insert_policy(
        tx,
        customer_rows.NewPolicy(
            policy_no=str(policy["policy_no"]),
            customer_id=customer_id,
            insured_name=policy.get("insured_name") or None,
            insurer=str(policy["insurer"]),
            product_code=str(policy["product_code"]),
            category=category,
            life=life,
            term_years=int(term) if isinstance(term, int | str) and str(term).isdigit() else None,
            sum_insured=_text(policy.get("sum_insured")),
            premium=_text(policy.get("premium")),
            effective_date=_text(policy.get("effective_date")),
            receipt_signed_date=_text(policy.get("receipt_signed_date")),
            seller_id=seller_id,
            instance_id=call.instance_id,
            recorded_at=clock.now(),
        ),
    )
    return {"policy_no": str(policy["policy_no"])}


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


@operator("policy_lookup", required=("policy_no",))
def policy_lookup(call: Call, policy_no: str) -> dict[str, Any]:
    on_file = customer_rows.policy_on_file(call.tx, str(policy_no or ""))
    if on_file is None:
        return {"found": False, **dict.fromkeys(f.name for f in fields(customer_rows.PolicyOnFile))}
    found = asdict(on_file)
    found["insured_name"] = found["insured_name"] or found["customer_name"]
    return {"found": True, **found}


# --- the demo customers and policies (opsflow init, tests) ---


def load_demo(session: Session, path: Path) -> None:
    """Customers and policies from a JSON file; idempotent (existing ones are left alone)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    now = clock.now()
    for entry in document["customers"]:
        if session.scalar(select(Customer).where(Customer.customer_no == entry["customer_no"])):
            continue
        session.add(
            Customer(
                **{k: entry.get(k) for k in ("customer_no", *_CUSTOMER_FIELDS)}, updated_at=now
            )
        )
    session.flush()
    for entry in document["policies"]:
        if session.get(Policy, entry["policy_no"]) is not None:
            continue
        customer = session.scalar(
            select(Customer).where(Customer.customer_no == entry["customer_no"])
        )
        seller = session.scalar(select(User).where(User.username == entry["seller"]))
        if customer is None:
            raise NotFoundError(
                f"demo policy {entry['policy_no']}: no customer {entry['customer_no']}"
            )
        fields = {k: v for k, v in entry.items() if k not in ("customer_no", "seller")}
        fields.setdefault("life", entry["category"] in LIFE_CATEGORIES)
        session.add(
            Policy(
                **fields,
                customer_id=customer.id,
                seller_id=seller.id if seller else None,
                recorded_at=now,
            )
        )
    session.flush()
