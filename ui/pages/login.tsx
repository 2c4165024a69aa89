/**
 * The sign-in page: user name, password and the 6-digit code of the
 * authenticator. The form posts to `/login`, which signs in through the API.
 */
import type { FC } from "hono/jsx";
import { FormAlert, HiddenField, Layout, TextField } from "../components.tsx";

/** The sign-in form (answered with itself after a refused sign-in). */
export const LoginForm: FC<{ next: string }> = ({ next }) => (
  <form id="login-form" class="card form" novalidate method="post" action="/login" data-kg-form>
    <HiddenField name="next" value={next} />
    <FormAlert id="login-alert" />
    <TextField
      id="login-username"
      field="username"
      label="User name"
      autocomplete="username"
      required
      maxlength={64}
      autofocus
    />
    <TextField
      id="login-password"
      field="password"
      label="Password"
      type="password"
      autocomplete="current-password"
      required
    />
    <TextField
      id="login-code"
      field="code"
      label="Authenticator code"
      hint="6 digits, changes every 30 seconds"
      inputmode="numeric"
      autocomplete="one-time-code"
      pattern="[0-9]{6}"
      maxlength={6}
      required
      class="code"
    />
    <div class="actions">
      <button type="submit" class="btn primary">Sign in</button>
    </div>
  </form>
);

/** The sign-in page; `next` is where to go afterwards. */
export const LoginPage: FC<{ next: string; expired?: boolean }> = ({ next, expired }) => (
  <Layout title="Sign in" mainClass="narrow">
    <p class="lead">
      Sign in with your password and the 6-digit code from your authenticator app.
    </p>
    {expired && (
      <div class="alert info" role="status">Your session ended. Please sign in again.</div>
    )}
    <LoginForm next={next} />
    <p class="muted small">
      Need to open ports from outside? Use the <a href="/knock/">web knock tool</a>.
    </p>
  </Layout>
);
