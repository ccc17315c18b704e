// The page's checks of a patient's identity (static/ui/identity.js) give the same answers as the
// server's (server/contract/validation.py; tests/policy/test_consent.py has the same cases).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  birthDateProblem,
  insuranceIdProblem,
  nationalIdProblem,
  patientProblems,
  todayInVietnam,
} from "../../static/ui/identity.js";

test("citizen IDs: 12 digits, a province code 001-096 first", () => {
  assert.equal(nationalIdProblem("001099012345"), null);
  assert.equal(nationalIdProblem("096305000001"), null);
  assert.equal(nationalIdProblem("00109901234"), "identity.national_id_digits");
  assert.equal(nationalIdProblem("00109901234a"), "identity.national_id_digits");
  assert.equal(nationalIdProblem("000099012345"), "identity.national_id_province");
  assert.equal(nationalIdProblem("097099012345"), "identity.national_id_province");
});

test("health insurance numbers: 2 capital letters and 13 digits, or 10 digits", () => {
  for (const good of ["DN4010123456789", "0123456789"]) assert.equal(insuranceIdProblem(good), null);
  for (const bad of ["dn4010123456789", "DN401012345678", "D14010123456789", "012345678"])
    assert.equal(insuranceIdProblem(bad), "identity.insurance_id_format");
});

test("dates of birth: real dates from 1900 to today", () => {
  assert.equal(birthDateProblem("1990-02-28", "2026-05-01"), null);
  assert.equal(birthDateProblem("2026-05-01", "2026-05-01"), null);
  assert.equal(birthDateProblem("2026-05-02", "2026-05-01"), "identity.birth_date_range");
  assert.equal(birthDateProblem("1899-12-31", "2026-05-01"), "identity.birth_date_range");
  assert.equal(birthDateProblem("1990-02-30", "2026-05-01"), "identity.birth_date_format");
  assert.equal(birthDateProblem("19900228", "2026-05-01"), "identity.birth_date_format");
});

test("a citizen ID and a date of birth must agree on the year", () => {
  const patient = { national_id: "001099012345", birth_date: "1989-04-30" };
  assert.deepEqual(patientProblems(patient, "2026-05-01"), [["national_id", "identity.national_id_year"]]);
  assert.deepEqual(patientProblems({ ...patient, birth_date: "1999-04-30" }, "2026-05-01"), []);
  assert.match(todayInVietnam(Date.UTC(2026, 4, 1, 18)), /^2026-05-02$/); // 01:00 in Hà Nội
});
