/** A one-line input for an identifier or address (no autocomplete, no spell check), its label, and a hint below it. */
export function TextField({
  id,
  label,
  hint,
  value,
  onInput,
  wide = false,
}: {
  id: string;
  label: string;
  hint: string;
  value: string;
  onInput: (e: Event) => void;
  wide?: boolean;
}) {
  const hintId = `${id}-hint`;
  return (
    <div class={wide ? 'field field-wide' : 'field'}>
      <label for={id}>{label}</label>
      <input id={id} value={value} onInput={onInput} autocomplete="off" spellcheck={false} aria-describedby={hintId} />
      <p class="hint" id={hintId}>
        {hint}
      </p>
    </div>
  );
}
