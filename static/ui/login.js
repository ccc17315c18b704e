// The sign-in page. What was typed as the username survives a failed attempt and a language
// change; the message is kept as a key (not as text) so the toggle translates it too.
let remembered = "";

// `ctx`: { h, t }. `notice`: { key, values } or null. `onSignedIn(token)`.
export function loginPage(ctx, { notice = null, onSignedIn, onNotice }) {
  const { h, t } = ctx;
  const username = h("input", {
    id: "login-username",
    name: "username",
    autocomplete: "username",
    required: true,
    value: remembered,
    autocapitalize: "none",
    spellcheck: "false",
  });
  const password = h("input", {
    id: "login-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const message = h(
    "div",
    { class: "login-message", "aria-live": "polite" },
    notice ? h("p", { class: "error", role: "alert" }, t(notice.key, notice.values || {})) : null,
  );
  const submit = h("button", { type: "submit" }, t("login.submit"));
  const fail = (key, values) => {
    // The form stays as it is; the password is cleared, the username kept.
    password.value = "";
    onNotice?.({ key, values });
    message.replaceChildren(h("p", { class: "error", role: "alert" }, t(key, values)));
    submit.disabled = false;
    password.focus();
  };
  const form = h(
    "form",
    {
      class: "login",
      "aria-labelledby": "login-title",
      onsubmit: async (e) => {
        e.preventDefault();
        remembered = username.value;
        submit.disabled = true;
        message.replaceChildren();
        let response;
        try {
          response = await fetch("/api/login", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ username: username.value, password: password.value }),
          });
        } catch (error) {
          fail("login.unreachable"); // the server (or the network) is down: say so, not nothing
          return;
        }
        // Throttled (429) is not a wrong password: say how long to wait, from Retry-After (seconds).
        if (response.status === 429) {
          const minutes = Math.max(1, Math.ceil(Number(response.headers.get("Retry-After") || 60) / 60));
          fail("login.throttled", { minutes });
          return;
        }
        if (response.status === 401 || response.status === 400) {
          fail("login.failed");
          return;
        }
        if (!response.ok) {
          fail("login.unavailable");
          return;
        }
        const body = await response.json().catch(() => null);
        if (!body?.token) {
          fail("login.unavailable");
          return;
        }
        onNotice?.(null);
        onSignedIn(body.token);
      },
    },
    h("h2", { id: "login-title" }, t("login.title")),
    h("label", { for: "login-username" }, t("login.username")),
    username,
    h("label", { for: "login-password" }, t("login.password")),
    password,
    message,
    submit,
  );
  return h("section", { class: "login-page" }, form);
}

export function forgetUsername() {
  remembered = "";
}
