// Minimal typings for the parts of buffer-layout (1.2.x) Petrel uses. The package ships none.
declare module 'buffer-layout' {
  export class Layout<T = unknown> {
    span: number;
    property?: string;
    constructor(span: number, property?: string);
    decode(b: Buffer, offset?: number): T;
    encode(src: T, b: Buffer, offset?: number): number;
    getSpan(b?: Buffer, offset?: number): number;
    replicate(property: string): this;
  }
  export class ExternalLayout<T = number> extends Layout<T> {
    isCount(): boolean;
  }
  export class Structure<T = Record<string, unknown>> extends Layout<T> {
    fields: Layout[];
  }
  export class Blob extends Layout<Buffer> {}
  export class Sequence<T = unknown> extends Layout<T[]> {}
  export class BitStructure<T = Record<string, number | boolean>> extends Layout<T> {
    addField(bits: number, property?: string): unknown;
    addBoolean(property: string): unknown;
  }
  export function u8(property?: string): Layout<number>;
  export function u16be(property?: string): Layout<number>;
  export function u24be(property?: string): Layout<number>;
  export function u32be(property?: string): Layout<number>;
  export function u16(property?: string): Layout<number>;
  export function u32(property?: string): Layout<number>;
  export function struct<T = Record<string, unknown>>(
    fields: Layout[],
    property?: string,
    decodePrefixes?: boolean,
  ): Structure<T>;
  export function blob(length: number | Layout<number>, property?: string): Blob;
  export function seq<T>(elementLayout: Layout<T>, count: number | Layout<number>, property?: string): Sequence<T>;
  export function offset(layout: Layout<number>, offset?: number, property?: string): ExternalLayout<number>;
  export function greedy(elementSpan?: number, property?: string): ExternalLayout<number>;
  export function bits<T = Record<string, number | boolean>>(
    word: Layout<number>,
    msb?: boolean,
    property?: string,
  ): BitStructure<T>;
}
