// The list shape of OpenAI's cursor pages: {object:"list", data, has_more, first_id, last_id}.
// The SDK asks for the next page with after=<id of the last item>, so `after` is always an id.

export interface ListPage<T> {
  object: "list";
  data: T[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

/** `rows` were fetched with limit + 1: the extra row only tells whether there is more. */
export function toListPage<T extends { id: string }>(rows: T[], limit: number): ListPage<T> {
  const data = rows.slice(0, limit);
  return {
    object: "list",
    data,
    has_more: rows.length > limit,
    first_id: data.length > 0 ? data[0].id : null,
    last_id: data.length > 0 ? data[data.length - 1].id : null,
  };
}

export function unixSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
