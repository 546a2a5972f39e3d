/**
 * The ONE table of keys of the full-screen client. The footer hints, the `?` help screen and the
 * key dispatcher are all generated from it, so they cannot disagree.
 */
export type Action =
  | 'cursor-left'
  | 'cursor-right'
  | 'field-prev'
  | 'field-next'
  | 'edit-byte'
  | 'next-flag'
  | 'prev-flag'
  | 'toggle-flag'
  | 'package-prev'
  | 'package-next'
  | 'open-package'
  | 'command-line'
  | 'help'
  | 'redraw'
  | 'quit';

export interface KeyBinding {
  /** blessed `key.full` names that trigger the action. */
  keys: readonly string[];
  /** How the key is written in the footer and the help. */
  label: string;
  action: Action;
  /** Short footer text. */
  hint: string;
  /** Help text. */
  summary: string;
  /** Changes the registry: disabled by --readonly. */
  edits: boolean;
  /** Shown in the footer (the help shows every binding). */
  footer: boolean;
}

export const KEYMAP: readonly KeyBinding[] = [
  { keys: ['left', 'h'], label: '←', action: 'cursor-left', hint: 'move', summary: 'cursor to the previous byte (offsets 4..15)', edits: false, footer: true },
  { keys: ['right', 'l'], label: '→', action: 'cursor-right', hint: 'move', summary: 'cursor to the next byte', edits: false, footer: true },
  { keys: ['up', 'k'], label: '↑', action: 'field-prev', hint: 'move', summary: 'cursor to the first byte of the previous field', edits: false, footer: true },
  { keys: ['down', 'j'], label: '↓', action: 'field-next', hint: 'move', summary: 'cursor to the first byte of the next field', edits: false, footer: true },
  { keys: ['enter'], label: 'Enter', action: 'edit-byte', hint: 'edit', summary: 'edit the byte under the cursor (decimal or 0x hex; Esc cancels)', edits: true, footer: true },
  { keys: ['tab'], label: 'Tab', action: 'next-flag', hint: 'pick flag', summary: 'move the flag cursor (the > in the flag panel) to the next flag', edits: false, footer: true },
  { keys: ['S-tab'], label: 'S-Tab', action: 'prev-flag', hint: 'pick flag', summary: 'move the flag cursor to the previous flag', edits: false, footer: false },
  { keys: ['f'], label: 'f', action: 'toggle-flag', hint: 'toggle flag', summary: 'toggle the flag under the flag cursor (>)', edits: true, footer: true },
  { keys: [':'], label: ':', action: 'command-line', hint: 'command', summary: 'command line: get, set <offset> <value>, toggle <FLAG>, url <url>, env, packages, help', edits: false, footer: true },
  { keys: ['?'], label: '?', action: 'help', hint: 'help', summary: 'this help (any key closes it)', edits: false, footer: true },
  { keys: ['C-l'], label: 'C-l', action: 'redraw', hint: 'redraw', summary: 'redraw the whole screen', edits: false, footer: false },
  { keys: ['q', 'C-c'], label: 'q', action: 'quit', hint: 'quit', summary: 'quit and restore the terminal', edits: false, footer: true },
  { keys: ['['], label: '[', action: 'package-prev', hint: 'pick package', summary: 'move the package cursor (the > in the package list) up', edits: false, footer: false },
  { keys: [']'], label: ']', action: 'package-next', hint: 'pick package', summary: 'move the package cursor down', edits: false, footer: true },
  { keys: ['o'], label: 'o', action: 'open-package', hint: 'open package', summary: 'open the package under the package cursor: versions, dist-tags, publisher, size, integrity, dependencies (any key closes)', edits: false, footer: true },
];

const BY_KEY = new Map<string, KeyBinding>();
for (const binding of KEYMAP) for (const key of binding.keys) BY_KEY.set(key, binding);

export function bindingForKey(full: string): KeyBinding | undefined {
  return BY_KEY.get(full);
}

/**
 * Footer hint items in table order; adjacent bindings with the same hint share one item
 * (`←→↑↓ move`). Editing keys are left out, and READ-ONLY said, when read-only.
 */
export function footerHints(readonly: boolean): string[] {
  const items: { labels: string; hint: string }[] = [];
  for (const binding of KEYMAP) {
    if (!binding.footer || (readonly && binding.edits)) continue;
    const last = items[items.length - 1];
    if (last !== undefined && last.hint === binding.hint) last.labels += binding.label;
    else items.push({ labels: binding.label, hint: binding.hint });
  }
  const hints = items.map((item) => `${item.labels} ${item.hint}`);
  if (readonly) hints.unshift('READ-ONLY');
  return hints;
}

/** Help lines: one per binding, with the other keys that do the same. */
export function keyHelpLines(readonly: boolean): string[] {
  const width = Math.max(...KEYMAP.map((b) => keyList(b).length));
  return KEYMAP.map((binding) => {
    const disabled = readonly && binding.edits ? '  (disabled: --readonly)' : '';
    return `${keyList(binding).padEnd(width)}  ${binding.summary}${disabled}`;
  });
}

function keyList(binding: KeyBinding): string {
  const others = binding.keys.filter((k) => !['left', 'right', 'up', 'down', 'enter', 'tab', 'S-tab'].includes(k) && k !== binding.label);
  return [binding.label, ...others].join(' ');
}
