import { VILD_TEMPLATES, ensembleTemplates, normalizeRows, promptsFor, splitSynonyms } from '../../lib/segment/prompts';

describe('prompt templates', () => {
  test('the vild set has the reference 14 templates', () => {
    expect(VILD_TEMPLATES).toHaveLength(14);
    expect(VILD_TEMPLATES[0]).toBe('a photo of a {}.');
    expect(VILD_TEMPLATES[1]).toBe('This is a photo of a {}');
    expect(VILD_TEMPLATES[13]).toBe('There is a large {} in the scene.');
  });

  test('puts a synonym list into each template whole, stripped', () => {
    expect(promptsFor('  person, individual ', ['a {}.', 'the {}'])).toEqual(['a person, individual.', 'the person, individual']);
  });

  test('fills every {} of a template, with the name taken literally', () => {
    expect(promptsFor('cat', ['{} and {} and {}'])).toEqual(['cat and cat and cat']);
    expect(promptsFor("$& $' $`", ['a {}.'])).toEqual(["a $& $' $`."]);
  });

  test('splits synonyms on commas, keeping a name without any whole', () => {
    expect(splitSynonyms(' person, someone ,, ')).toEqual(['person', 'someone']);
    expect(splitSynonyms(' , ')).toEqual([' , ']);
  });
});

describe('template ensembling', () => {
  test('normalises each prompt, averages per class and normalises again', () => {
    // Two classes, two templates, dim 2. Class 0: (3,4) and (0,2) → units (.6,.8) and (0,1) → mean (.3,.9).
    const embeddings = new Float32Array([3, 4, 0, 2, -1, 0, 0, -5]);
    const classes = ensembleTemplates(embeddings, 2, 2);
    const norm0 = Math.hypot(0.3, 0.9);
    expect(Array.from(classes)).toEqual([
      expect.closeTo(0.3 / norm0, 6), expect.closeTo(0.9 / norm0, 6),
      expect.closeTo(-Math.SQRT1_2, 6), expect.closeTo(-Math.SQRT1_2, 6),
    ]);
  });

  test('leaves a zero row at zero', () => {
    expect(Array.from(normalizeRows(new Float32Array([0, 0, 3, 4]), 2))).toEqual([0, 0, 0.6000000238418579, 0.800000011920929]);
  });
});
