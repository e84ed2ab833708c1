// The console's shell: sign-in when there is no key, else the navigation and the view of the
// current hash route.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { html } from "./lib/html.js";
import { useRoute } from "./lib/router.js";
import { apiKey, onSessionChange, signOut } from "./lib/session.js";
import { FilePage } from "./views/file-page.js";
import { FilesPage } from "./views/files-page.js";
import { JobPage } from "./views/job-page.js";
import { JobsPage } from "./views/jobs-page.js";
import { ModelsPage } from "./views/models-page.js";
import { NotFound } from "./views/not-found.js";
import { Playground } from "./views/playground.js";
import { SignIn } from "./views/sign-in.js";

const SECTIONS = [
  { path: "jobs", label: "Jobs" },
  { path: "files", label: "Files" },
  { path: "models", label: "Models" },
  { path: "playground", label: "Playground" },
];

function View({ route }) {
  const [section, id] = route.path;
  switch (section ?? "jobs") {
    case "jobs":
      return id
        ? html`<${JobPage} key=${route.seq} id=${id} />`
        : html`<${JobsPage} key=${route.seq} query=${route.query} />`;
    case "files":
      return id ? html`<${FilePage} key=${route.seq} id=${id} />` : html`<${FilesPage} key=${route.seq} />`;
    case "models":
      return html`<${ModelsPage} key=${route.seq} />`;
    case "playground":
      return html`<${Playground} key=${route.seq} query=${route.query} />`;
    default:
      return html`<${NotFound} what=${`the page #/${route.path.join("/")}`} />`;
  }
}

function skipToContent(e) {
  e.preventDefault();
  document.getElementById("main")?.focus();
}

function App() {
  const [signedIn, setSignedIn] = useState(apiKey() !== null);
  const route = useRoute();
  useEffect(() => onSessionChange(() => setSignedIn(apiKey() !== null)), []);
  useEffect(() => {
    const section = SECTIONS.find((s) => s.path === (route.path[0] ?? "jobs"));
    document.title = `${section ? section.label : "Not found"} · tunehouse`;
  }, [route]);
  if (!signedIn) return html`<${SignIn} />`;
  const current = route.path[0] ?? "jobs";
  return html`
    <a class="skip" href="#main" onClick=${skipToContent}>Skip to content</a>
    <header class="topbar">
      <a class="brand" href="#/jobs">tunehouse</a>
      <nav aria-label="Sections">
        ${SECTIONS.map(
          (s) =>
            html`<a href=${`#/${s.path}`} aria-current=${current === s.path ? "page" : undefined}>${s.label}</a>`,
        )}
      </nav>
      <button type="button" class="link" onClick=${() => signOut()}>Sign out</button>
    </header>
    <main id="main" tabindex="-1"><${View} route=${route} /></main>
  `;
}

const root = document.getElementById("app");
root.textContent = ""; // the "Loading…" placeholder: render() adds to what is there
render(html`<${App} />`, root);
