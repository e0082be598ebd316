"""Attribution of readings to products on real Spark: every reading is matched or has one reason."""

from datetime import date

from billing_assets.transforms.dimensions import agreement_days
from billing_assets.transforms.gold import attribute

DAY = date(2026, 3, 10)


def test_each_unmatched_reading_says_why(spark) -> None:
    agreements = spark.createDataFrame(
        [(1, "m1", "A1", 101), (2, "m2", "A2", 999), (3, "m3", "A3", 301)],
        "agreement_id long, meterpoint_id string, account_id string, product_id long",
    ).selectExpr("*", "DATE'2026-01-01' AS agreement_valid_from", "CAST(NULL AS DATE) AS agreement_valid_to")
    products = spark.createDataFrame(
        [(101, "Standard", True), (301, None, False)], "product_id long, display_name string, is_variable boolean"
    )
    settled = spark.createDataFrame(
        [(f"r{m}", f"m{m}", 1.0) for m in range(1, 5)], "record_id string, meterpoint_id string, consumption double"
    ).selectExpr("*", "DATE'2026-03-10' AS settlement_date")

    matched, unmatched = attribute(settled, agreement_days(agreements, products, DAY, DAY))

    assert [(x["record_id"], x["product_display_name"]) for x in matched.collect()] == [("r1", "Standard")]
    assert sorted((x["record_id"], x["reason"]) for x in unmatched.collect()) == [
        ("r2", "unknown_product"),
        ("r3", "product_without_name"),
        ("r4", "no_agreement"),
    ]
    assert "unmatched_reason" not in matched.columns + unmatched.columns
