/**
 * A package's readme as safe HTML for the package view (issue 15.7). The readme is whatever a
 * publisher sent, so it is treated as hostile:
 *   - markdown-it with `html: false`: raw HTML in the markdown (`<script>`, `<img onerror>`,
 *     `<iframe>`…) is escaped to text, never passed through;
 *   - links only to `http:`, `https:`, `mailto:` or a `#fragment` (no `javascript:`, `data:`,
 *     `vbscript:`, `file:`, no relative paths that would resolve against the dashboard); any other
 *     link stays plain text; every link gets `rel="noopener noreferrer nofollow"`;
 *   - images are never loaded (the page makes no request to another host): an image becomes a
 *     link (when its address is allowed) or text saying "image: <alt>";
 *   - input is cut at MAX_README_CHARS.
 * The output uses a fixed set of tags and attributes (README_TAGS / README_ATTRIBUTES), which the
 * tests check over generated inputs. The page's CSP (`script-src 'self'`, `img-src 'self'`) is a
 * second line of defence, not the first.
 */
import type MarkdownIt from 'markdown-it';

export const MAX_README_CHARS = 256 * 1024;

/** Tags the renderer can emit. */
export const README_TAGS: ReadonlySet<string> = new Set([
  'p', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol', 'li', 'a', 'code', 'pre', 'em', 'strong', 'blockquote', 'hr', 'br',
  'table', 'thead', 'tbody', 'tr', 'th', 'td', 's', 'span',
]);
/** Attributes it can emit (with the tags they belong to). */
export const README_ATTRIBUTES: Readonly<Record<string, readonly string[]>> = {
  a: ['href', 'rel', 'title'],
  ol: ['start'],
  code: ['class'],
  span: ['class'],
  th: ['style'],
  td: ['style'],
};

const ALLOWED_SCHEME = /^(https?:|mailto:)/i;

/** A link target the page may carry: absolute http(s)/mailto, or a fragment on the readme itself. */
export function isAllowedLink(url: string): boolean {
  const trimmed = url.trim();
  if (trimmed.startsWith('#')) return true;
  // browsers ignore tabs/newlines and leading control characters in a scheme: judge what they would see
  // eslint-disable-next-line no-control-regex
  const seen = trimmed.replace(/[\u0000-\u0020\u007f]/g, '');
  return ALLOWED_SCHEME.test(seen) && /^(https?:\/\/[^\s/]|mailto:)/i.test(seen);
}

/**
 * The renderer, built by the first readme shown: markdown-it (≈ 10 ms CPU with its parts) is not
 * needed before a package page is opened (issue 17: cold start).
 */
let renderer: MarkdownIt.MarkdownIt | undefined;

function markdownRenderer(): MarkdownIt.MarkdownIt {
  if (renderer) return renderer;
  const MarkdownItClass = require('markdown-it') as typeof MarkdownIt;
  const md = new MarkdownItClass({ html: false, linkify: false, typographer: false, breaks: false });
  md.validateLink = isAllowedLink;

  // markdown-it calls validateLink only on a non-empty destination: `[x]()` still becomes `<a href="">`,
  // which would point at the dashboard itself. A link whose href is not allowed is unwrapped to its text.
  md.core.ruler.push('drop_disallowed_links', (state) => {
    for (const block of state.tokens) {
      if (block.type !== 'inline' || block.children === null) continue;
      const kept = [];
      let dropping = false;
      for (const token of block.children) {
        if (token.type === 'link_open' && !isAllowedLink(String(token.attrGet('href') ?? ''))) { dropping = true; continue; }
        if (token.type === 'link_close' && dropping) { dropping = false; continue; }
        kept.push(token);
      }
      block.children = kept;
    }
  });

  const defaultLinkOpen = md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
  md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
    tokens[idx].attrSet('rel', 'noopener noreferrer nofollow');
    return defaultLinkOpen(tokens, idx, options, env, self);
  };
  md.renderer.rules.image = (tokens, idx, options, env) => {
    const token = tokens[idx];
    const alt = md.renderer.renderInlineAsText(token.children ?? [], options, env);
    const text = `image: ${alt || 'no description'}`;
    const src = String(token.attrGet('src') ?? '');
    const label = `<span class="readme-image">${md.utils.escapeHtml(text)}</span>`;
    // an image is not loaded; its address (if allowed) becomes a link the reader may follow
    return isAllowedLink(src) ? `<a href="${md.utils.escapeHtml(src)}" rel="noopener noreferrer nofollow">${label}</a>` : label;
  };
  // fenced code: no highlighter, the info string becomes a class only if it is a plain word
  md.options.highlight = null;
  md.renderer.rules.fence = (tokens, idx) => {
    const token = tokens[idx];
    const lang = token.info.trim().split(/\s+/)[0] ?? '';
    const cls = /^[A-Za-z0-9_+-]{1,32}$/.test(lang) ? ` class="language-${lang}"` : '';
    return `<pre><code${cls}>${md.utils.escapeHtml(token.content)}</code></pre>\n`;
  };
  renderer = md;
  return md;
}

export interface RenderedReadme {
  html: string;
  /** the markdown was longer than MAX_README_CHARS and was cut */
  truncated: boolean;
  /** characters of markdown the publisher sent */
  length: number;
}

export function renderReadme(markdown: string): RenderedReadme {
  const truncated = markdown.length > MAX_README_CHARS;
  const source = truncated ? markdown.slice(0, MAX_README_CHARS) : markdown;
  return { html: source.trim() === '' ? '' : markdownRenderer().render(source), truncated, length: markdown.length };
}
