// A patient's identity checked in the page with the server's rules (server/contract/validation.py)
// before the request is sent: each check gives the i18n key of the problem, or null. The server
// checks again: these only say it sooner, in the page's language.

const DIGITS = /^[0-9]+$/;

// The 12-digit citizen ID: a province code 001-096 first (Nghị định 137/2015/NĐ-CP Art. 13).
export function nationalIdProblem(value) {
  if (value.length !== 12 || !DIGITS.test(value)) return "identity.national_id_digits";
  const province = Number(value.slice(0, 3));
  if (province < 1 || province > 96) return "identity.national_id_province";
  return null;
}

// The year of birth a citizen ID encodes: digit 4 the century (0-1: 1900s, 2-3: 2000s ...), 5-6 the year.
export function nationalIdBirthYear(value) {
  return 1900 + 100 * Math.floor(Number(value[3]) / 2) + Number(value.slice(4, 6));
}

// The health insurance card: 2 capital letters and 13 digits, or the 10-digit social insurance number.
export function insuranceIdProblem(value) {
  if (/^[0-9]{10}$/.test(value) || /^[A-Z]{2}[0-9]{13}$/.test(value)) return null;
  return "identity.insurance_id_format";
}

// A date of birth, YYYY-MM-DD, from 1900-01-01 to `today` (YYYY-MM-DD in Vietnam).
export function birthDateProblem(value, today) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return "identity.birth_date_format";
  const [year, month, day] = match.slice(1).map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day)
    return "identity.birth_date_format";
  if (value < "1900-01-01" || value > today) return "identity.birth_date_range";
  return null;
}

export function identityProblem(nationalId, birthDate) {
  if (!nationalId || !birthDate) return null;
  return nationalIdBirthYear(nationalId) === Number(birthDate.slice(0, 4)) ? null : "identity.national_id_year";
}

// Today in Vietnam (UTC+7, no daylight saving), YYYY-MM-DD.
export function todayInVietnam(now = Date.now()) {
  return new Date(now + 7 * 3600 * 1000).toISOString().slice(0, 10);
}

// Every problem of a patient's identity fields (given as typed, trimmed): [field, i18n key] pairs.
export function patientProblems(patient, today = todayInVietnam()) {
  const found = [];
  if (patient.national_id) {
    const p = nationalIdProblem(patient.national_id);
    if (p) found.push(["national_id", p]);
  }
  if (patient.insurance_id) {
    const p = insuranceIdProblem(patient.insurance_id);
    if (p) found.push(["insurance_id", p]);
  }
  if (patient.birth_date) {
    const p = birthDateProblem(patient.birth_date, today);
    if (p) found.push(["birth_date", p]);
  }
  if (!found.length) {
    const p = identityProblem(patient.national_id, patient.birth_date);
    if (p) found.push(["national_id", p]);
  }
  return found;
}
