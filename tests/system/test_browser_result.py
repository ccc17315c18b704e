"""In the browser: the clinician at Ba Vì reports back what became of the patient on the record
page; the specialist at Xanh Pôn sees it in the history."""

from __future__ import annotations

from playwright.async_api import Browser

from tests.conftest import Instance
from tests.system.browsing import shot, signed_in
from tests.system.test_rtc import active_consult


async def test_the_requester_reports_the_result_and_the_specialist_sees_it(
    instance: Instance, browser: Browser, clients
) -> None:
    _, surgeon, consult = await active_consult(clients, instance, instance)
    cid = consult["id"]
    ended = await surgeon.call("consult:end", {"consult_id": cid, "outcome": "follow_up"})
    assert ended["ok"], ended

    clinician = await signed_in(browser, instance, "bavi.clinician")
    await clinician.evaluate(f"location.hash = '#/record/{cid}'")
    await clinician.get_by_label("Đỡ, đang điều trị tiếp").check()
    await clinician.get_by_label("Ghi chú về kết quả").fill("Hết sốt sau 2 ngày")
    await clinician.get_by_role("button", name="Gửi kết quả cho tuyến trên").click()
    await clinician.wait_for_selector("[data-form=result] [role=status]:has-text('Đã gửi kết quả')")
    facts = await clinician.inner_text(".facts")
    assert "Đỡ, đang điều trị tiếp (Hết sốt sau 2 ngày)" in facts, facts
    await clinician.wait_for_selector("li[data-kind=result]")
    await shot(clinician, "record-result")

    specialist = await signed_in(browser, instance, "xanhpon.surgeon")
    await specialist.evaluate("location.hash = '#/history'")
    shown = await specialist.wait_for_selector(f"[data-consult='{cid}'] [data-result=improving]")
    assert "Đỡ, đang điều trị tiếp" in await shown.inner_text()
    # The specialist is not of the requesting side: the record shows the result, no form.
    await specialist.evaluate(f"location.hash = '#/record/{cid}'")
    await specialist.wait_for_selector(".facts:has-text('Hết sốt sau 2 ngày')")
    assert await specialist.locator("[data-form=result]").count() == 0
