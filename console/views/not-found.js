// A route or object that is not there.
import { html } from "../lib/html.js";

export function NotFound({ what }) {
  return html`<section><h1>Not found</h1><p>There is no ${what}. <a href="#/jobs">Back to the jobs</a>.</p></section>`;
}
