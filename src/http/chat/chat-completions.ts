// POST /v1/chat/completions for one request, once its model is open: the messages rendered with
// the model's chat template, then all choices decoded together (one batch), returned whole or streamed as
// chat.completion.chunk events (role first, one finish_reason per choice, usage last if asked).
// With `tools`, a reply is parsed for calls in the syntax of the model's template: whole replies
// get `message.tool_calls`, streams `delta.tool_calls` (content before a call streams as usual).

import type { FastifyReply, FastifyRequest } from "fastify";
import type { FunctionTool } from "../../../worker/engine/data/example.js";
import { completionBudget, samplingFor } from "../../serving/generation-plan.js";
import type { ChatParams } from "../../serving/generation-request.js";
import { jsonConstraint, vocabTrie } from "../../serving/json-constraint.js";
import { ANY_OBJECT, compileSchema, type SchemaNode } from "../../serving/json-grammar.js";
import { literalChoiceConstraint } from "../../serving/literal-choice-constraint.js";
import { encodeChatPrompt } from "../../serving/prompt-encoding.js";
import {
  allChoices,
  type ChoiceExtras,
  type ChoicePiece,
  type ChoiceResult,
  runChoices,
} from "../../serving/run-choice.js";
import type { ServingSession } from "../../serving/serving-session.js";
import { tokenBytesTable } from "../../serving/token-bytes.js";
import {
  type ParsedToolCall,
  parseToolCalls,
  type ToolCallFormat,
  toolCallFormat,
} from "../../serving/tool-call-format.js";
import { ToolCallStreamSplitter } from "../../serving/tool-call-stream.js";
import { clientGone } from "./client-connection.js";
import {
  type ChatTokenLogprob,
  type ChatToolCall,
  chatChunk,
  chatCompletion,
  chatLogprobs,
  completionHead,
  type FinishReason,
  newToolCallId,
  usageOf,
} from "./completion-objects.js";
import { checkLogitBiasIds } from "./completion-request.js";
import { SseStream } from "./sse-stream.js";

type Delta = {
  role?: "assistant";
  content?: string;
  refusal?: null;
  tool_calls?: {
    index: number;
    id?: string;
    type?: "function";
    function: { name?: string; arguments: string };
  }[];
};

/** How tools shape the reply: the syntax to parse, the forced start of a call, the name constraint. */
interface ToolPlan {
  format: ToolCallFormat;
  /** text the reply is made to start with ("" unless tool_choice forces a call) */
  prefix: string;
  /** fresh per choice: constraints keep state */
  extras: () => ChoiceExtras;
}

/** A function's parameters as a grammar; a schema we cannot enforce still gets a JSON object. */
function argumentsGrammar(tools: readonly FunctionTool[], name: string): SchemaNode {
  const parameters = tools.find((t) => t.function.name === name)?.function.parameters;
  try {
    return parameters ? compileSchema(parameters) : ANY_OBJECT;
  } catch {
    return ANY_OBJECT;
  }
}

function planTools(params: ChatParams, session: ServingSession): ToolPlan | null {
  if (!params.tools) return null;
  const { runtime } = session;
  const tools = params.tools;
  const format = toolCallFormat(runtime.template);
  const choice = params.toolChoice;
  const trie = () => vocabTrie(runtime.tokenizer);
  if (choice.type === "function") {
    const grammar = argumentsGrammar(tools, choice.name);
    return {
      format,
      prefix: format.beforeName + choice.name + format.afterName,
      extras: () => ({
        keepSpecialTokens: true,
        processLogits: jsonConstraint(grammar, trie(), runtime.stopIds, { suffix: format.afterArgs }),
      }),
    };
  }
  if (choice.type === "required") {
    // the name (one of the tools'), then its arguments by their schema, then the end of the call
    const heads = tools.map((t) => t.function.name + format.afterName);
    const table = tokenBytesTable(runtime.tokenizer);
    const nameConstraint = literalChoiceConstraint(heads, table);
    const extras = (): ChoiceExtras => {
      let args: ((logits: Float32Array, generated: readonly number[]) => void) | null = null;
      return {
        keepSpecialTokens: true,
        processLogits: (logits, generated) => {
          if (!args) {
            const written = Buffer.from(generated.flatMap((id) => [...(table[id] ?? [])])).toString("utf8");
            const k = heads.indexOf(written);
            if (k >= 0)
              args = jsonConstraint(
                argumentsGrammar(tools, tools[k].function.name),
                trie(),
                runtime.stopIds,
                {
                  suffix: format.afterArgs,
                  skip: generated.length,
                },
              );
          }
          (args ?? nameConstraint)(logits, generated);
        },
      };
    };
    return { format, prefix: format.beforeName, extras };
  }
  return { format, prefix: "", extras: () => ({ keepSpecialTokens: true }) };
}

function toolCallsOf(calls: ParsedToolCall[], parallel: boolean): ChatToolCall[] {
  return (parallel ? calls : calls.slice(0, 1)).map((c) => ({
    id: newToolCallId(),
    type: "function" as const,
    function: { name: c.name, arguments: c.arguments },
  }));
}

export async function completeChat(
  request: FastifyRequest,
  reply: FastifyReply,
  session: ServingSession,
  params: ChatParams,
) {
  const { runtime, model, fingerprint } = session;
  checkLogitBiasIds(params.logitBias, runtime.model.config.vocabSize);
  const tools = planTools(params, session);
  const forcedCall = params.toolChoice.type === "function" || params.toolChoice.type === "required";
  const extrasFor = (): ChoiceExtras => {
    const extras = tools?.extras() ?? {};
    // response_format holds the reply to JSON unless a call is forced (its arguments are JSON already)
    if (params.responseFormat && !(tools && forcedCall))
      extras.processLogits = jsonConstraint(
        params.responseFormat,
        vocabTrie(runtime.tokenizer),
        runtime.stopIds,
      );
    return extras;
  };
  const prefix = tools?.prefix ?? "";
  const prompt = encodeChatPrompt(params.messages, params.tools, runtime.tokenizer, runtime.template, prefix);
  const budget = completionBudget(prompt.ids.length, params.maxTokens, runtime.contextLength, "messages");
  const topLogprobs = params.logprobs ? params.topLogprobs : 0;
  const heading = completionHead("chatcmpl", params.model, fingerprint);
  /** every choice at once: one prefill, then the n choices decode as rows of one batch */
  const runAll = (
    onPiece?: (index: number, piece: ChoicePiece) => void,
    cancelled?: () => boolean,
  ): Promise<ChoiceResult>[] => {
    // a choice that fails fails the request: its siblings stop at their next step
    let failed = false;
    return runChoices(
      model,
      runtime.tokenizer,
      prompt.ids,
      runtime.stopIds,
      Array.from({ length: params.n }, (_, i) => ({
        params: samplingFor(params, budget, topLogprobs, i),
        onPiece: onPiece && ((piece: ChoicePiece) => onPiece(i, piece)),
        cancelled: () => failed || cancelled?.() === true,
        extras: extrasFor(),
      })),
    ).map((pending) =>
      pending.catch((err) => {
        failed = true;
        throw err;
      }),
    );
  };
  const finishOf = (r: ChoiceResult, calls: unknown[]): FinishReason =>
    calls.length > 0 && r.finishReason === "stop" ? "tool_calls" : r.finishReason;

  if (!params.stream) {
    const gone = clientGone(reply);
    const results = await allChoices(runAll(undefined, gone));
    return chatCompletion({
      ...heading,
      choices: results.map((r) => {
        const parsed = tools ? parseToolCalls(tools.format.syntax, prefix + r.text) : null;
        const calls = parsed ? toolCallsOf(parsed.calls, params.parallelToolCalls) : [];
        return {
          text: parsed ? parsed.content : prefix + r.text,
          toolCalls: calls,
          finishReason: finishOf(r, calls),
          logprobs: params.logprobs ? chatLogprobs(runtime.tokenizer, r.tokens) : null,
        };
      }),
      usage: usageOf(
        prompt.ids.length,
        results.reduce((s, r) => s + r.completionTokens, 0),
      ),
    });
  }

  const sse = new SseStream(request, reply);
  const usageField = params.includeUsage ? { usage: null } : {};
  const send = (index: number, delta: Delta, finish: FinishReason | null, logprobs?: ChatTokenLogprob[]) =>
    sse.send(
      chatChunk({
        ...heading,
        choices: [
          {
            index,
            delta,
            ...(params.logprobs ? { logprobs: logprobs ? { content: logprobs, refusal: null } : null } : {}),
            finish_reason: finish,
          },
        ],
        ...usageField,
      }),
    );
  try {
    let completionTokens = 0;
    // the first delta of every choice carries the role (the SDK's stream helper needs it)
    for (let i = 0; i < params.n; i++) send(i, { role: "assistant", content: "", refusal: null }, null);
    const splitters = Array.from({ length: params.n }, () =>
      tools ? new ToolCallStreamSplitter(tools.format.syntax, prefix) : null,
    );
    const choices = runAll(
      (i, piece) => {
        const splitter = splitters[i];
        const text = splitter ? splitter.push(piece.text) : piece.text;
        if (text.length === 0 && !params.logprobs) return;
        send(
          i,
          { content: text },
          null,
          params.logprobs ? chatLogprobs(runtime.tokenizer, piece.tokens) : undefined,
        );
      },
      () => sse.closed,
    ).map(async (pending, i) => {
      const result = await pending;
      completionTokens += result.completionTokens;
      let calls: ChatToolCall[] = [];
      const splitter = splitters[i];
      if (splitter) {
        const end = splitter.finish();
        if (end.content.length > 0) send(i, { content: end.content }, null);
        calls = toolCallsOf(end.calls, params.parallelToolCalls);
        calls.forEach((call, k) => {
          // as OpenAI streams them: id, type and name first, then the arguments
          send(
            i,
            {
              tool_calls: [
                {
                  index: k,
                  id: call.id,
                  type: "function",
                  function: { name: call.function.name, arguments: "" },
                },
              ],
            },
            null,
          );
          send(i, { tool_calls: [{ index: k, function: { arguments: call.function.arguments } }] }, null);
        });
      }
      send(i, {}, finishOf(result, calls));
    });
    await allChoices(choices);
    if (params.includeUsage) {
      sse.send(
        chatChunk({
          ...heading,
          choices: [],
          usage: usageOf(prompt.ids.length, completionTokens),
        }),
      );
    }
    sse.end();
  } catch (err) {
    sse.failWith(err, request);
  }
  return reply;
}
