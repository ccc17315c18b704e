"""The round form in real Chromium, on a 360 px phone: a clinician at Ba Vì gives a listed
patient's identity and consent, checked in the page with the server's rules before anything is
sent; the round keeps them."""

from __future__ import annotations

from playwright.async_api import Browser

from tests.conftest import Instance
from tests.system.accessibility import horizontal_overflow
from tests.system.browsing import signed_in
from tests.system.test_consent import IDENTITY
from tests.system.test_rounds import http, new_round


async def test_the_round_form_takes_a_patients_identity_and_consent_on_a_phone(
    instance: Instance, browser: Browser
) -> None:
    created = await new_round(instance)
    rid = created["id"]
    page = await signed_in(browser, instance, "bavi.clinician")
    await page.set_viewport_size({"width": 360, "height": 740})
    await page.locator(f'.card.round[data-round="{rid}"] button.edit-round').first.click()
    row = page.locator(".round-form.editing .patient-row").first
    await row.locator(".listed-identity summary").click()
    await row.get_by_label("Họ và tên người bệnh").fill(IDENTITY["name"])
    await row.get_by_label("Ngày sinh").fill(IDENTITY["birth_date"])
    await row.get_by_label("Giới").select_option("male")
    await row.get_by_label("Số căn cước công dân (12 số)").fill("001086004217")  # born in 1986, says the ID
    await row.get_by_label("Số thẻ BHYT").fill(IDENTITY["insurance_id"])
    await row.get_by_label("Địa chỉ").fill(IDENTITY["address"])
    await row.get_by_label("Người bệnh (hoặc người nhà) đã đồng ý hội chẩn từ xa").check()
    await row.get_by_label("Ai đồng ý").select_option("relative")
    await row.get_by_label("Hình thức").select_option("written")
    await row.get_by_label("Đồng ý cả ghi hình buổi hội chẩn").check()
    assert await horizontal_overflow(page) == []

    await page.click(".round-form.editing button[type=submit]")
    await page.wait_for_selector(".round-form .form-error:has-text('không khớp với năm sinh')")
    await row.get_by_label("Số căn cước công dân (12 số)").fill(IDENTITY["national_id"])
    await page.click(".round-form.editing button[type=submit]")
    await page.wait_for_selector(".round-form .form-error:has-text('quan hệ')")  # a relative's relation
    await row.get_by_label("Quan hệ với người bệnh").fill("con gái")
    await page.click(".round-form.editing button[type=submit]")
    await page.wait_for_selector(".rounds-notice")

    status, body = await http(instance, "bavi.clinician", "GET", f"/api/rounds/{rid}")
    assert status == 200, body
    listed = body["round"]["patients"][0]
    assert listed["identity"] == {
        "name": IDENTITY["name"],
        "birth_date": IDENTITY["birth_date"],
        "sex": "male",
        "national_id": IDENTITY["national_id"],
        "insurance_id": IDENTITY["insurance_id"],
        "address": IDENTITY["address"],
    }
    consent = listed["consent"]
    assert (consent["given_by"], consent["relation"], consent["method"]) == ("relative", "con gái", "written")
    assert consent["scopes"] == ["consult", "recording"]
    assert [p["identity"] for p in body["round"]["patients"][1:]] == [{}, {}]  # the others untouched
    assert page.errors == []  # type: ignore[attr-defined]
