"""The SQL on customer and policy rows that the customer-file operators need, through a lean ``Txn``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.storage.txn import Txn


@dataclass(frozen=True)
class CustomerValues:
    """A customer's file as the sales case gives it; empty values are None."""

    name: str | None
    id_type: str | None
    id_no: str | None
    mobile: str | None
    occupation: str | None
    address: str | None


def customer_by_identity(tx: Txn, id_type: str | None, id_no: str | None) -> tuple[int, str] | None:
    """(id, customer number) of the customer with this identity document, or None."""
    row = tx.one(
        "SELECT id, customer_no FROM customer WHERE id_type = ? AND id_no = ?", (id_type, id_no)
    )
    return None if row is None else (row[0], str(row[1]))


def update_customer(tx: Txn, customer_id: int, values: CustomerValues, now: datetime) -> None:
    """A new name; the contact details only where given (the old ones stay otherwise)."""
    tx.execute(
        "UPDATE customer SET name = ?, mobile = COALESCE(?, mobile),"
        " occupation = COALESCE(?, occupation), address = COALESCE(?, address), updated_at = ?"
        " WHERE id = ?",
        (values.name, values.mobile, values.occupation, values.address, tx.when(now), customer_id),
    )


def insert_customer(tx: Txn, customer_no: str, values: CustomerValues, now: datetime) -> int:
    """A new customer row; returns its id."""
    return tx.insert(
        "INSERT INTO customer (customer_no, name, id_type, id_no, mobile, occupation, address,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            customer_no, values.name, values.id_type, values.id_no, values.mobile,
            values.occupation, values.address, tx.when(now),
        ),
    )  # fmt: skip


def set_customer_no(tx: Txn, customer_id: int, customer_no: str) -> None:
    tx.execute("UPDATE customer SET customer_no = ? WHERE id = ?", (customer_no, customer_id))


def customer_id(tx: Txn, customer_no: str) -> int | None:
    row = tx.one("SELECT id FROM customer WHERE customer_no = ?", (customer_no,))
    return None if row is None else row[0]


def policy_exists(tx: Txn, policy_no: str) -> bool:
    return tx.one("SELECT 1 FROM policy WHERE policy_no = ?", (policy_no,)) is not None


@dataclass(frozen=True)
class NewPolicy:
    policy_no: str
    customer_id: int
    insured_name: str | None
    insurer: str
    product_code: str
    category: str
    life: bool
    term_years: int | None
    sum_insured: str | None
    premium: str | None
    effective_date: str | None
    receipt_signed_date: str | None
    seller_id: int | None
    instance_id: int
    recorded_at: datetime


def insert_policy(tx: Txn, new: NewPolicy) -> None:
    tx.execute(
        "INSERT INTO policy (policy_no, customer_id, insured_name, insurer, product_code, category,"
        " life, term_years, sum_insured, premium, effective_date, receipt_signed_date, seller_id,"
        " instance_id, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new.policy_no, new.customer_id, new.insured_name, new.insurer, new.product_code,
            new.category, new.life, new.term_years, new.sum_insured, new.premium,
            new.effective_date, new.receipt_signed_date, new.seller_id, new.instance_id,
            tx.when(new.recorded_at),
        ),
    )  # fmt: skip


@dataclass(frozen=True)
class PolicyOnFile:
    """A policy with its customer and seller, as a claim or complaint looks it up."""

    policy_no: str
    customer_no: str
    customer_name: str
    insured_name: str | None
    insurer: str
    product_code: str
    category: str
    life: bool
    term_years: int | None
    seller: str | None  # the seller's username
    effective_date: str | None


def policy_on_file(tx: Txn, policy_no: str) -> PolicyOnFile | None:
    row = tx.one(
        "SELECT p.policy_no, c.customer_no, c.name, p.insured_name, p.insurer, p.product_code,"
        " p.category, p.life, p.term_years, u.username, p.effective_date"
        ' FROM policy p JOIN customer c ON c.id = p.customer_id LEFT JOIN "user" u ON u.id = p.seller_id'
        " WHERE p.policy_no = ?",
        (policy_no,),
    )
    if row is None:
        return None
    values = list(row)
    values[7] = bool(values[7])
    return PolicyOnFile(*values)
