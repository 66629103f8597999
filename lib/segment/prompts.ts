/**
 * Prompt templates and their ensembling: how SAN turns a class name into one text embedding.
 *
 * Each class name is put whole (synonym lists included, as the reference does) into every template; the text
 * encoder's unit embeddings are averaged over the templates and normalised again.
 */

/** The 14 "vild" templates SAN uses, in the reference's order and spelling (periods included or not as there). */
export const VILD_TEMPLATES: readonly string[] = Object.freeze([
  'a photo of a {}.',
  'This is a photo of a {}',
  'There is a {} in the scene',
  'There is the {} in the scene',
  'a photo of a {} in the scene',
  'a photo of a small {}.',
  'a photo of a medium {}.',
  'a photo of a large {}.',
  'This is a photo of a small {}.',
  'This is a photo of a medium {}.',
  'This is a photo of a large {}.',
  'There is a small {} in the scene.',
  'There is a medium {} in the scene.',
  'There is a large {} in the scene.',
]);

/** One template, for speed when the vocabulary is large. */
export const SINGLE_TEMPLATES: readonly string[] = Object.freeze(['a photo of a {}.']);

/** Named template sets. */
export const TEMPLATE_SETS = Object.freeze({ vild: VILD_TEMPLATES, single: SINGLE_TEMPLATES });
export type TemplateSetName = keyof typeof TEMPLATE_SETS;

/**
 * The prompts of one class, one per template, with every `{}` of a template replaced by the name, stripped of
 * surrounding whitespace as SAN does. The name is inserted literally: no `$&`-style replacement patterns.
 */
export function promptsFor(className: string, templates: readonly string[]): string[] {
  const name = className.trim();
  return templates.map((template) => template.split('{}').join(name));
}

/** The synonyms of a class name ("person, someone"), for `synonyms: 'average'`; the whole name when it has none. */
export function splitSynonyms(className: string): string[] {
  const parts = className.split(',').map((part) => part.trim()).filter((part) => part !== '');
  return parts.length > 0 ? parts : [className];
}

/** Scales each row of a row-major [rows, dim] matrix to unit L2 norm, in place. */
export function normalizeRows(matrix: Float32Array, dim: number): Float32Array {
  for (let offset = 0; offset < matrix.length; offset += dim) {
    const row = matrix.subarray(offset, offset + dim);
    let squares = 0;
    for (let i = 0; i < dim; i += 1) squares += row[i] * row[i];
    const norm = Math.sqrt(squares);
    if (norm > 0) for (let i = 0; i < dim; i += 1) row[i] /= norm;
  }
  return matrix;
}

/**
 * Ensembles unit prompt embeddings into one embedding per class.
 * @param promptEmbeddings - row-major [classes × templates, dim], class-major (all templates of class 0 first).
 * @returns row-major [classes, dim], each row the normalised mean of its class's normalised prompt embeddings.
 */
export function ensembleTemplates(promptEmbeddings: Float32Array, templateCount: number, dim: number): Float32Array {
  normalizeRows(promptEmbeddings, dim);
  const classCount = promptEmbeddings.length / (templateCount * dim);
  const classes = new Float32Array(classCount * dim);
  for (let c = 0; c < classCount; c += 1) {
    const target = classes.subarray(c * dim, (c + 1) * dim);
    for (let t = 0; t < templateCount; t += 1) {
      const source = promptEmbeddings.subarray((c * templateCount + t) * dim, (c * templateCount + t + 1) * dim);
      for (let i = 0; i < dim; i += 1) target[i] += source[i];
    }
  }
  // The mean's 1/templateCount factor cancels in the normalisation.
  return normalizeRows(classes, dim);
}
