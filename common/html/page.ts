import { escapeHtml, html, raw, type SafeHtml } from "./escape.js";
import { chartAssets } from "./chart.js";
import { BASE_CSS } from "./style.js";

export interface PageOptions {
  title: string;
  /** One line under the title (lab, time of the run). */
  subtitle?: string;
  body: SafeHtml | SafeHtml[];
  /** Extra CSS, inlined after the base sheet. */
  css?: string;
  /** Inline scripts, run in order at the end of the body. */
  scripts?: string[];
  /** Inline uPlot and the chart runtime (needed when the body has {@link chart}s). */
  charts?: boolean;
  /** The page's content security policy; {@link OFFLINE_CSP} (nothing fetched) by default. */
  csp?: string;
  /** Markup above the title in the header (a navigation bar). */
  nav?: SafeHtml;
}

/**
 * The content security policy of every report: nothing may be fetched from anywhere — styles,
 * scripts and images are inline — so a page that renders has everything it needs and works
 * from a file copied off the lab, with no network.
 */
export const OFFLINE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; font-src data:";

/** A complete, self-contained HTML document. */
export function renderPage(options: PageOptions): string {
  const body = Array.isArray(options.body) ? options.body : [options.body];
  const assets = options.charts ? chartAssets() : { css: "", scripts: [] };
  const scripts = [...assets.scripts, ...(options.scripts ?? [])].map((s) => `<script>${closeSafe(s)}</script>`).join("\n");
  // The empty icon keeps browsers from asking for /favicon.ico, which the CSP would block (Firefox
  // reports that as an error).
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${raw(options.csp ?? OFFLINE_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${options.title}</title>
<style>${raw(BASE_CSS)}${raw(assets.css)}${raw(options.css ?? "")}</style>
</head>
<body>
<header>${options.nav ?? ""}<h1>${options.title}</h1>${options.subtitle ? html`<p class="subtitle">${options.subtitle}</p>` : ""}</header>
<main>
${body}
</main>
${raw(scripts)}
</body>
</html>
`.value;
}

/** A titled section of a page. */
export function section(title: string, content: SafeHtml | SafeHtml[], id?: string): SafeHtml {
  return html`<section${id ? raw(` id="${escapeHtml(id)}"`) : ""}><h2>${title}</h2>${content}</section>`;
}

/** A verdict badge: pass, fail or warn. */
export function badge(text: string, kind: "pass" | "fail" | "warn" | "info"): SafeHtml {
  return html`<span class="badge ${kind}">${text}</span>`;
}

/** Summary figures shown as a row of cards (label above a large value). */
export function figures(items: Array<{ label: string; value: string; kind?: "pass" | "fail" | "warn" }>): SafeHtml {
  return html`<div class="figures">${items.map(
    (f) => html`<div class="figure${f.kind ? raw(` ${f.kind}`) : ""}"><div class="label">${f.label}</div><div class="value">${f.value}</div></div>`,
  )}</div>`;
}

/** An inline script must not contain `</script`; library code never needs it spelled that way. */
function closeSafe(script: string): string {
  return script.replace(/<\/(script)/gi, "<\\/$1");
}
